"""Cyclone workflows as Python code.

    from cyclone.sdk import Client, Stage, Workflow, script, emit

    with Workflow("hello", project="demo") as wf:
        @script
        def version():
            emit(version="1.4.2")

        greet = Stage("greet", image="alpine:3.20",
                      script=f"echo building {version.outputs.version}")
        version >> greet

    print(wf.to_yaml())                     # the manifests `cyclone apply -f` reads
    with Client() as client:                # the CLI's current context
        client.apply("demo", wf)
        run = client.run(wf)
        run.wait(timeout=300)
        print(run.phase, run.outputs(version))

Every object is checked with the server's own rules (`cyclone.api`) when it is written,
so a mistake raises `ManifestError` naming the field before anything is sent.
"""

from cyclone.sdk.client import APIError, Client, Run, RunTimeout, StageChange
from cyclone.sdk.manifest import ManifestError, OutputRef, to_yaml
from cyclone.sdk.resources import Resource, ResourceMount
from cyclone.sdk.runs import CronTrigger, RunRequest, SCMTrigger, Trigger, WebhookTrigger
from cyclone.sdk.script import ScriptStage, emit, script
from cyclone.sdk.stage import Argument, Artifact, ArtifactInput, ArtifactSource, Stage
from cyclone.sdk.workflow import Notification, Project, Receiver, Workflow

__all__ = [
    "APIError",
    "Argument",
    "Artifact",
    "ArtifactInput",
    "ArtifactSource",
    "Client",
    "CronTrigger",
    "ManifestError",
    "Notification",
    "OutputRef",
    "Project",
    "Receiver",
    "Resource",
    "ResourceMount",
    "Run",
    "RunRequest",
    "RunTimeout",
    "SCMTrigger",
    "ScriptStage",
    "Stage",
    "StageChange",
    "Trigger",
    "WebhookTrigger",
    "Workflow",
    "emit",
    "script",
    "to_yaml",
]
