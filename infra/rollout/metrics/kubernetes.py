"""Kubernetes provider: container restart counts of the pods a label selector matches, via the kubernetes client.

Registers the ``kubernetes`` metrics backend (gates on a label selector's restarts) and feeds the
"restarts" gate of the analysis. The kubernetes client (about a second to import) loads only when a
provider is built, so registering costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from infra import registry
from infra.errors import InputError
from infra.rollout.backends import MetricsContext, MetricsSource
from infra.rollout.errors import MetricsUnavailable
from infra.rollout.seams import MetricQuery, MetricsProvider, Sample

if TYPE_CHECKING:
    from kubernetes import client as k8s


def _errors() -> tuple[type[BaseException], ...]:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError as Urllib3Error

    # ValueError: it answered, but not as a Kubernetes API server would.
    return (ApiException, Urllib3Error, OSError, ValueError)


class KubernetesProvider:
    """``query.expr`` is a label selector (``app=web,track=canary``); ``labels['namespace']`` or the default."""

    name = "kubernetes"

    def __init__(self, kubeconfig: str | None = None, context: str | None = None, namespace: str = "default",
                 timeout: float = 10.0) -> None:
        from kubernetes import client as k8s
        from kubernetes import config as k8s_config

        try:
            # The client library is untyped; the ApiClient it returns is only handed to typed API classes.
            api_client = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context)
        except (k8s_config.ConfigException, OSError) as exc:
            raise InputError(f"kubeconfig must name a reachable cluster context, but {kubeconfig!r} "
                             f"gave: {exc}") from exc
        self.namespace = namespace
        self.timeout = timeout
        self._core: k8s.CoreV1Api = k8s.CoreV1Api(api_client)
        self._version: k8s.VersionApi = k8s.VersionApi(api_client)

    def restarts(self, selector: str, namespace: str) -> tuple[int, int]:
        """(total restarts, containers counted) over the matching pods, init containers included."""
        try:
            pods = self._core.list_namespaced_pod(namespace, label_selector=selector,
                                                  _request_timeout=self.timeout)
        except _errors() as exc:
            raise MetricsUnavailable(f"kubernetes pods list in {namespace} failed: {exc}") from exc
        total = containers = 0
        for pod in pods.items:
            status = pod.status
            if status is None:
                continue
            for cs in [*(status.container_statuses or []), *(status.init_container_statuses or [])]:
                total += int(cs.restart_count or 0)
                containers += 1
        return total, containers

    def query(self, query: MetricQuery) -> Sample:
        if not query.expr:
            raise InputError(f"kubernetes metric {query.name} expr must be a label selector, but '' was given")
        total, containers = self.restarts(query.expr, query.labels.get("namespace", self.namespace))
        # No containers matched: that is missing data, never "zero restarts".
        return Sample(value=float(total), count=containers)

    def is_online(self) -> bool:
        try:
            self._version.get_code(_request_timeout=self.timeout)
        except _errors():
            return False
        return True


@registry.METRICS.register
class KubernetesSettings(MetricsSource):
    """``rollout.metrics`` for Kubernetes: each gate's ``expr`` is a label selector whose restarts are counted."""

    kind: Literal["kubernetes"] = "kubernetes"
    kubeconfig: str | None = Field(
        default=None, description="Path to a kubeconfig. Default: the cluster stack's kubeconfig output.")
    context: str | None = Field(default=None, description="Kubeconfig context. Default: current.")
    namespace: str | None = Field(default=None, description="Namespace of the gates' pods. Default: the service's.")

    needs_kubeconfig: ClassVar[bool] = True

    def build(self, ctx: MetricsContext) -> MetricsProvider:
        return KubernetesProvider(kubeconfig=self.kubeconfig or ctx.kubeconfig, context=self.context,
                                  namespace=self.namespace or ctx.namespace or "default")
