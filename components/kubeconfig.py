"""Secret kubeconfig Outputs for the cluster components (EKS, GKE), built from the cluster's own outputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pulumi

from components.cluster_support import exec_kubeconfig


def exec_kubeconfig_output(
    cluster_name: pulumi.Input[str],
    server: pulumi.Input[str],
    ca_data: pulumi.Input[str],
    *,
    command: str,
    args: Callable[[str], Sequence[str]],
    install_hint: str,
) -> pulumi.Output[str]:
    """A secret kubeconfig whose user runs ``command args(cluster_name)`` as a credential plugin."""

    def build(values: list[str]) -> str:
        name, endpoint, ca = (str(v) for v in values)
        return exec_kubeconfig(cluster=name, server=endpoint, ca_data=ca, command=command, args=args(name),
                               install_hint=install_hint)

    return pulumi.Output.secret(pulumi.Output.all(cluster_name, server, ca_data).apply(build))
