"""The `cyclone` command."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="cyclone",
    help="Cyclone: a Kubernetes-native CI/CD workflow engine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.command()
def crds() -> None:
    """Print the CustomResourceDefinitions of cyclone.dev/v1alpha1 as YAML."""
    from cyclone.api.crds import render_crds_yaml

    typer.echo(render_crds_yaml(), nl=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
