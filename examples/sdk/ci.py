"""The CI pipeline of examples/ci-pipeline.yaml, written with the Python SDK: a Git
checkout, build (an artifact), test (results), package (an artifact).

    sh examples/serve-demo-repo.sh &                 # git://127.0.0.1:9418/cyclone-demo-repo
    python examples/sdk/ci.py --apply --run          # apply, run, follow, print outputs
    python examples/sdk/ci.py --yaml                 # only print the manifests

The server, token and tenant come from CYCLONE_SERVER/CYCLONE_TOKEN/CYCLONE_TENANT, else
the CLI's current context (`cyclone up` writes one).
"""

from __future__ import annotations

import argparse
import sys

from cyclone.sdk import APIError, Client, ManifestError, Resource, Stage, Workflow

IMAGE = "alpine:3.20"
REPO_URL = "git://127.0.0.1:9418/cyclone-demo-repo"


def ci(project: str = "demo") -> Workflow:
    source = Resource.git("demo-source", url="${variables.REPO_URL}", revision="main")
    with Workflow("ci", project=project) as wf:
        build = Stage("ci-build", image=IMAGE, container="build",
                      input_resources=[source.at("/workspace/src")],
                      output_artifacts={"bin": "/workspace/bin"},
                      script="sh /workspace/src/build.sh /workspace/bin")
        binary = build.artifact("bin").at("/workspace/bin")
        test = Stage("ci-test", image=IMAGE, container="test",
                     input_resources=[source.at("/workspace/src")], input_artifacts=[binary],
                     script="sh /workspace/src/test.sh /workspace/bin"
                            " | tee /cyclone/results/__result__")
        package = Stage("ci-package", image=IMAGE, container="package",
                        input_artifacts=[binary],
                        output_artifacts={"package": "/workspace/package"},
                        script="tar -czf /workspace/package/greet.tgz -C /workspace/bin . &&"
                               ' echo "package:greet.tgz" > /cyclone/results/__result__ &&'
                               ' echo "size:$(wc -c < /workspace/package/greet.tgz)"'
                               " >> /cyclone/results/__result__")
        build >> test >> package
    return wf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default="demo")
    parser.add_argument("--repo-url", default=REPO_URL, help="the repository to check out")
    parser.add_argument("--yaml", action="store_true", help="print the manifests")
    parser.add_argument("--apply", action="store_true", help="apply them to the server")
    parser.add_argument("--run", action="store_true", help="start a run and follow it")
    args = parser.parse_args(argv)
    wf = ci(args.project)
    if args.yaml or not (args.apply or args.run):
        print(wf.to_yaml(), end="")
    if not (args.apply or args.run):
        return 0
    with Client() as client:
        if args.apply:
            for line in client.apply(args.project, wf):
                print(line)
        if args.run:
            run = client.run(wf, variables={"REPO_URL": args.repo_url}, timeout="10m")
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
