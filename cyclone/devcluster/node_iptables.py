"""The KUBE-* chains a node's kubelet and kube-proxy add to the host's iptables, listed,
checked and removed again.

A node starts only on a host without KUBE-* chains (another Kubernetes' kube-proxy and ours
would rewrite each other's Service rules); `node_host` journals that before the kubelet
starts (`HostChanges.record_kube_chains`) and `restore` removes the chains that were not
there. Only chains named KUBE-*, in the tables kube-proxy uses, and the rules that jump to
them are ever touched.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess

from cyclone.devcluster.plane import default_bin_dir

IPTABLES_COMMANDS = ("iptables", "ip6tables")
IPTABLES_TABLES = ("nat", "filter", "mangle")
KUBE_CHAIN = re.compile(r"KUBE-[A-Z0-9-]+")
LOCALNET_GUARD = "block incoming localnet connections"
"""The comment of the kubelet's KUBE-FIREWALL rule that drops packets to 127.0.0.0/8 from
elsewhere."""


def _iptables(command: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([command, "-w", "5", *args], capture_output=True, text=True)


def _table_rules(command: str, table: str) -> list[str]:
    """`iptables -t table -S` ([] when the command or the table is not there)."""
    if shutil.which(command) is None:
        return []
    result = _iptables(command, "-t", table, "-S")
    return result.stdout.splitlines() if result.returncode == 0 else []


def kube_chains() -> list[str]:
    """Every KUBE-* chain in the host's iptables, as `command table chain`."""
    found = []
    for command in IPTABLES_COMMANDS:
        for table in IPTABLES_TABLES:
            for rule in _table_rules(command, table):
                words = rule.split()
                if len(words) == 2 and words[0] == "-N" and KUBE_CHAIN.fullmatch(words[1]):
                    found.append(f"{command} {table} {words[1]}")
    return sorted(found)


def localnet_guarded() -> bool:
    """The kubelet's guard is in place: INPUT jumps to KUBE-FIREWALL, which drops packets to
    127.0.0.0/8 that do not come from there."""
    firewall = _iptables("iptables", "-t", "filter", "-S", "KUBE-FIREWALL")
    incoming = _iptables("iptables", "-t", "filter", "-S", "INPUT")
    return (firewall.returncode == 0 and any(
        LOCALNET_GUARD in rule and "-d 127.0.0.0/8" in rule and "-j DROP" in rule
        for rule in firewall.stdout.splitlines())
        and "-j KUBE-FIREWALL" in incoming.stdout)


def kube_proxy_synced() -> bool:
    """kube-proxy has written its rules once: its last rule of KUBE-SERVICES is there."""
    result = _iptables("iptables", "-t", "nat", "-S", "KUBE-SERVICES")
    return result.returncode == 0 and "-j KUBE-NODEPORTS" in result.stdout


def remove_kube_chains(before: set[str]) -> list[str]:
    """Run `kube-proxy --cleanup` (iptables mode), then remove whatever KUBE-* chain it left
    that was not there before the node (the canaries, the masquerade mark) with the rules that
    jump to them. `before` holding chains means another Kubernetes shares the host: its
    chains stay, and so kube-proxy's clean-up, which removes them by name, is not run. Its
    exit status is not used (without `ipset` it fails on the IPVS sets it never made): what
    counts is which chains are left. The caller holds the node lock."""
    kube_proxy = default_bin_dir() / "kube-proxy"
    if not before and os.access(kube_proxy, os.X_OK):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run([str(kube_proxy), "--cleanup", "--cleanup-ipvs=false"],
                           capture_output=True, timeout=60)
    left_by_cleanup = set(kube_chains()) - before
    for command in IPTABLES_COMMANDS:
        for table in IPTABLES_TABLES:
            ours = {entry.split()[2] for entry in left_by_cleanup
                    if entry.startswith(f"{command} {table} ")}
            if not ours:
                continue
            for rule in _table_rules(command, table):
                words = shlex.split(rule)
                if (words[:1] == ["-A"] and words[1] not in ours and "-j" in words
                        and words[words.index("-j") + 1] in ours):
                    _iptables(command, "-t", table, "-D", *words[1:])
            for chain in sorted(ours):
                _iptables(command, "-t", table, "-F", chain)
            for chain in sorted(ours):
                _iptables(command, "-t", table, "-X", chain)
    left = sorted(set(kube_chains()) - before)
    return [f"could not remove iptables chains {', '.join(left)}"] if left else []
