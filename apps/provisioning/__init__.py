"""Predictive provisioning with staging (issue 15): forecasts become ranked changes, each
rendered from a versioned template, staged (verified in memory, rehearsed when a
rehearsal is configured), deployed atomically and judged after.

``needs`` (bottlenecks from forecast quantiles), ``templates`` (the library),
``engine`` (recommendations, changes, staging, deploy, rollback, outcomes), ``model``
(the data plane kept in the verifier), ``verify`` and its modules (the incremental
verifier), ``changes`` and ``store`` (records, persisted), ``api`` (gRPC),
``app`` (the factory ``apps.provisioning.app:provider``), ``cli``.

Importing the package registers the app: owner ``provisioning`` (its groups are the
pinned paths' indirect groups), its band in ``forward`` (pinned paths, above traffic
engineering's) and its config section ``provisioning``.
"""

from apps.provisioning.config import ProvisioningConfig
from controller.appbase import AppSpec, register

SPEC = register(AppSpec(
    name="provisioning", code=0x0A, ids=True,
    bands=(("forward", 1300, 1300),),
    section="provisioning", schema=ProvisioningConfig,
    summary="provisioning: changes made ahead of forecast demand, staged and verified before they deploy"))
