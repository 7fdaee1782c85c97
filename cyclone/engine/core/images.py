"""Default images: what a built-in resource type resolves with unless configured."""

from __future__ import annotations

from types import MappingProxyType

DEFAULT_RESOLVER_IMAGES = MappingProxyType({
    "Git": "cyclone/resolver-git",
    "Svn": "cyclone/resolver-svn",
    "Image": "cyclone/resolver-image",
    "Http": "cyclone/resolver-http",
})
"""The resolver image of each built-in resource type (the engine's `resolver_images`
default, and what the server's built-in ResourceTypes name)."""
