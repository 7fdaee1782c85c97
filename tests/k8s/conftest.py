from support.control_plane import control_plane, remote_cluster

__all__ = ["control_plane", "remote_cluster"]
