"""The node agent (the kubelet of clusters without one) and its runtimes."""

from cyclone.node.agent import NodeAgent, run_node_agent
from cyclone.node.runtimes import FakeRuntime, HostRuntime, Runtime

__all__ = ["FakeRuntime", "HostRuntime", "NodeAgent", "Runtime", "run_node_agent"]
