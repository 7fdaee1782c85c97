"""SVN post-commit notifications (``X-Subversion-Event: Post-Commit``).

A repository's post-commit hook posts ``{"repoUUID": ..., "revision": ...}`` (optionally
``"repo"``, the repository URL or path); a trigger's ``spec.scm.repo`` names the UUID or
that URL.
"""

from __future__ import annotations

from cyclone.engine.core.scm.events import EventType, Provider, ScmEvent, load_json


def parse(event: str, body: bytes) -> list[ScmEvent]:
    if event.lower() not in ("post-commit", "postcommit"):
        return []
    data = load_json(body)
    uuid = str(data.get("repoUUID") or data.get("repoUuid") or "")
    url = str(data.get("repo") or "")
    revision = str(data.get("revision") or "")
    if not revision or not (uuid or url):
        return []
    aliases = tuple(name for name in (url,) if name and uuid)
    return [ScmEvent(Provider.SVN, EventType.POST_COMMIT, uuid or url, revision,
                     commit=revision, extra_repos=aliases)]
