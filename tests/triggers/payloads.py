"""Webhook bodies in the shapes the providers document (trimmed to the fields that matter
plus enough context to be recognisable)."""

from __future__ import annotations

import json

SHA = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
SHA2 = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"

GITHUB_REPOSITORY = {
    "id": 186853002,
    "name": "app",
    "full_name": "octo/app",
    "private": False,
    "owner": {"login": "octo", "id": 21031067, "type": "User"},
    "html_url": "https://github.com/octo/app",
    "clone_url": "https://github.com/octo/app.git",
    "default_branch": "main",
}
GITHUB_SENDER = {"login": "octo", "id": 21031067, "type": "User"}


def github_push(branch: str = "main", *, deleted: bool = False) -> dict:
    return {
        "ref": f"refs/heads/{branch}",
        "before": SHA2,
        "after": SHA,
        "created": False,
        "deleted": deleted,
        "forced": False,
        "base_ref": None,
        "compare": "https://github.com/octo/app/compare/da1560886d4f...0d1a26e67d8f",
        "commits": [{"id": SHA, "message": "Update README.md", "distinct": True}],
        "head_commit": {"id": SHA, "message": "Update README.md",
                        "timestamp": "2019-05-15T15:20:30-05:00"},
        "repository": GITHUB_REPOSITORY,
        "pusher": {"name": "octo", "email": "octo@example.com"},
        "sender": GITHUB_SENDER,
    }


def github_create_tag(tag: str = "v1.2.0") -> dict:
    return {
        "ref": tag,
        "ref_type": "tag",
        "master_branch": "main",
        "description": None,
        "pusher_type": "user",
        "repository": GITHUB_REPOSITORY,
        "sender": GITHUB_SENDER,
    }


def github_pull_request(action: str = "opened", number: int = 2, head: str = SHA,
                        base: str = "main") -> dict:
    return {
        "action": action,
        "number": number,
        "pull_request": {
            "url": f"https://api.github.com/repos/octo/app/pulls/{number}",
            "id": 279147437,
            "number": number,
            "state": "open",
            "title": "Update the README with new information.",
            "head": {"label": "octo:feature", "ref": "feature", "sha": head,
                     "repo": GITHUB_REPOSITORY},
            "base": {"label": f"octo:{base}", "ref": base, "sha": SHA2,
                     "repo": GITHUB_REPOSITORY},
        },
        "repository": GITHUB_REPOSITORY,
        "sender": GITHUB_SENDER,
    }


def github_issue_comment(body: str = "/retest", number: int = 2, *, on_pr: bool = True) -> dict:
    issue: dict = {
        "url": f"https://api.github.com/repos/octo/app/issues/{number}",
        "number": number,
        "title": "Update the README",
        "state": "open",
    }
    if on_pr:
        issue["pull_request"] = {
            "url": f"https://api.github.com/repos/octo/app/pulls/{number}"}
    return {
        "action": "created",
        "issue": issue,
        "comment": {"id": 492700400, "body": body, "user": GITHUB_SENDER},
        "repository": GITHUB_REPOSITORY,
        "sender": GITHUB_SENDER,
    }


GITLAB_PROJECT = {
    "id": 15,
    "name": "Diaspora",
    "web_url": "http://example.com/mike/diaspora",
    "git_http_url": "http://example.com/mike/diaspora.git",
    "namespace": "Mike",
    "path_with_namespace": "mike/diaspora",
    "default_branch": "master",
}


def gitlab_push(branch: str = "master") -> dict:
    return {
        "object_kind": "push",
        "event_name": "push",
        "before": SHA2,
        "after": SHA,
        "ref": f"refs/heads/{branch}",
        "checkout_sha": SHA,
        "user_id": 4,
        "user_name": "John Smith",
        "project_id": 15,
        "project": GITLAB_PROJECT,
        "commits": [{"id": SHA, "message": "fixed readme"}],
        "total_commits_count": 1,
    }


def gitlab_tag_push(tag: str = "v1.0.0") -> dict:
    return {
        "object_kind": "tag_push",
        "event_name": "tag_push",
        "before": "0000000000000000000000000000000000000000",
        "after": SHA,
        "ref": f"refs/tags/{tag}",
        "checkout_sha": SHA,
        "user_id": 1,
        "project_id": 15,
        "project": GITLAB_PROJECT,
        "commits": [],
        "total_commits_count": 0,
    }


def gitlab_merge_request(action: str = "open", iid: int = 1, commit: str = SHA,
                         target: str = "master") -> dict:
    attributes = {
        "id": 99,
        "iid": iid,
        "target_branch": target,
        "source_branch": "ms-viewport",
        "source_project_id": 14,
        "target_project_id": 15,
        "state": "opened",
        "title": "MS-Viewport",
        "last_commit": {"id": commit, "message": "fixed readme"},
        "action": action,
    }
    if action == "update":
        attributes["oldrev"] = SHA2
    return {
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "user": {"id": 1, "name": "Administrator", "username": "root"},
        "project": GITLAB_PROJECT,
        "object_attributes": attributes,
    }


def gitlab_note(note: str = "/retest", iid: int = 1) -> dict:
    return {
        "object_kind": "note",
        "event_type": "note",
        "user": {"id": 1, "name": "Administrator", "username": "root"},
        "project_id": 15,
        "project": GITLAB_PROJECT,
        "object_attributes": {"id": 1244, "note": note, "noteable_type": "MergeRequest",
                              "noteable_id": 7},
        "merge_request": {"id": 7, "iid": iid, "target_branch": "master",
                          "source_branch": "tutorial", "state": "opened",
                          "last_commit": {"id": SHA, "message": "Add simple search"}},
    }


BITBUCKET_REPOSITORY = {
    "slug": "repository",
    "id": 84,
    "name": "repository",
    "scmId": "git",
    "state": "AVAILABLE",
    "project": {"key": "PROJ", "id": 84, "name": "project", "type": "NORMAL"},
}
BITBUCKET_ACTOR = {"name": "admin", "emailAddress": "admin@example.com", "id": 1,
                   "displayName": "Administrator", "slug": "admin", "type": "NORMAL"}


def bitbucket_refs_changed(ref: str = "refs/heads/master", ref_type: str = "BRANCH") -> dict:
    return {
        "eventKey": "repo:refs_changed",
        "date": "2017-09-19T09:45:32+1000",
        "actor": BITBUCKET_ACTOR,
        "repository": BITBUCKET_REPOSITORY,
        "changes": [{
            "ref": {"id": ref, "displayId": ref.rsplit("/", 1)[-1], "type": ref_type},
            "refId": ref,
            "fromHash": SHA2,
            "toHash": SHA,
            "type": "UPDATE",
        }],
    }


def bitbucket_pull_request(event_key: str = "pr:opened", pr_id: int = 1,
                           commit: str = SHA, target: str = "master") -> dict:
    return {
        "eventKey": event_key,
        "date": "2017-09-19T09:58:11+1000",
        "actor": BITBUCKET_ACTOR,
        "pullRequest": {
            "id": pr_id,
            "version": 0,
            "title": "a new file added",
            "state": "OPEN",
            "open": True,
            "fromRef": {"id": "refs/heads/a-branch", "displayId": "a-branch",
                        "latestCommit": commit, "repository": BITBUCKET_REPOSITORY},
            "toRef": {"id": f"refs/heads/{target}", "displayId": target,
                      "latestCommit": SHA2, "repository": BITBUCKET_REPOSITORY},
        },
    }


def bitbucket_pr_comment(text: str = "/retest") -> dict:
    body = bitbucket_pull_request("pr:comment:added")
    body["comment"] = {"properties": {"repositoryId": 84}, "id": 62, "version": 0,
                       "text": text, "author": BITBUCKET_ACTOR}
    return body


SVN_REPO_UUID = "4ae4b6b0-2b8c-4a3c-9d1c-8b0b2e6a9d55"


def svn_post_commit(revision: str = "42") -> dict:
    return {"repoUUID": SVN_REPO_UUID, "revision": revision}


def encode(payload: dict) -> bytes:
    return json.dumps(payload).encode()
