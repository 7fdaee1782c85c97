"""`RunState` lives in the core (`cyclone.engine.core.runstate`); the controllers import it
from here as well."""

from cyclone.engine.core.runstate import RunState

__all__ = ["RunState"]
