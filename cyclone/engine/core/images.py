"""Default images: what Cyclone's own pods run unless configured.

Every one is tagged with the package version: `make images` builds them under exactly these
names (`scripts/images/build.sh`), and the Helm chart and deploy/ manifests name the same tags.
"""

from __future__ import annotations

from types import MappingProxyType

from cyclone import __version__

IMAGE_TAG = __version__
"""The tag of every image Cyclone's own pods use."""

OWN_IMAGE_PULL_POLICY = "IfNotPresent"
"""The pull policy of Cyclone's own containers: an image imported onto the node (or
pre-pulled) is used as it is, a missing one is pulled from the registry."""


def cyclone_image(name: str, tag: str = IMAGE_TAG) -> str:
    """``cyclone/<name>:<tag>``, the name `make images` gives the image ``name``."""
    return f"cyclone/{name}:{tag}"


RESOLVER_IMAGE_PREFIX = "cyclone/resolver-"
"""The pod builder's resolver image for a resource type without a resolver of its own is
``<prefix><type>:<tag>``."""

DEFAULT_RESOLVER_IMAGES = MappingProxyType({
    "Git": cyclone_image("resolver-git"),
    "Svn": cyclone_image("resolver-svn"),
    "Image": cyclone_image("resolver-image"),
    "Http": cyclone_image("resolver-http"),
})
"""The resolver image of each built-in resource type (the engine's `resolver_images`
default, and what the server's built-in ResourceTypes name)."""

TOOLBOX_IMAGE = cyclone_image("toolbox")
"""The GC pods', the PVC watchdog's and the cache cleaning pods' image (busybox with sh)."""


def replaces_default_resolver(resolver: str | None, default: str) -> bool:
    """Whether a built-in resource type's stored ``resolver`` is an earlier release's default
    (``cyclone/resolver-<type>`` untagged or with another tag) that ``default`` supersedes;
    any other image is an administrator's choice and stays."""
    if not resolver or resolver == default:
        return False
    return resolver.split(":", 1)[0] == default.split(":", 1)[0]
