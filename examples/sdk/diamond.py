"""The diamond DAG of examples/diamond.yaml, written with the Python SDK.

"version" fans out to two builds that use its output; "report" joins them.

    python examples/sdk/diamond.py --yaml          # print the manifests
    python examples/sdk/diamond.py --apply --run   # apply them, run, follow, print outputs

The server, token and tenant come from CYCLONE_SERVER/CYCLONE_TOKEN/CYCLONE_TENANT, else
the CLI's current context (`cyclone up` writes one).
"""

from __future__ import annotations

import argparse
import sys

from cyclone.sdk import APIError, Client, ManifestError, Stage, Workflow

IMAGE = "alpine:3.20"
RESULTS = "/cyclone/results/__result__"


def diamond(project: str = "demo") -> Workflow:
    with Workflow("diamond", project=project) as wf:
        version = Stage("version", image=IMAGE,
                        script=f"echo version:1.4.$(date +%s) > {RESULTS}")
        linux = Stage("build-linux", image=IMAGE,
                      script=f'echo "binary:app-{version.outputs.version}-linux" > {RESULTS}')
        mac = Stage("build-mac", image=IMAGE,
                    script=f'echo "binary:app-{version.outputs.version}-mac" > {RESULTS}')
        report = Stage("report", image=IMAGE, script=(
            f'echo "release:{linux.outputs.binary},{mac.outputs.binary}" > {RESULTS}'))
        version >> [linux, mac] >> report
    return wf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default="demo")
    parser.add_argument("--yaml", action="store_true", help="print the manifests")
    parser.add_argument("--apply", action="store_true", help="apply them to the server")
    parser.add_argument("--run", action="store_true", help="start a run and follow it")
    args = parser.parse_args(argv)
    wf = diamond(args.project)
    if args.yaml or not (args.apply or args.run):
        print(wf.to_yaml(), end="")
    if not (args.apply or args.run):
        return 0
    with Client() as client:
        if args.apply:
            for line in client.apply(args.project, wf):
                print(line)
        if args.run:
            run = client.run(wf)
            print(f"workflowrun/{run.name} created")
            for _ in run.watch(echo=True):
                pass
            for stage in wf.stages:
                for key, value in run.outputs(stage).items():
                    print(f"  {stage.name}.{key} = {value}")
            return 0 if run.phase == "Succeeded" else 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (APIError, ManifestError) as err:
        sys.exit(f"error: {err}")
    except KeyboardInterrupt:
        print("stopped watching; the run goes on", file=sys.stderr)
        sys.exit(130)
