"""Traffic engineering: candidate paths, link-disjoint backups and the min-MLU split LP.

``paths`` builds the directed substrate graph from a topology spec and computes
candidate paths (k shortest by IGP cost), ECMP splits, and link-disjoint backup
paths; ``lp`` compiles candidate paths against the directed links and solves the
min-max-link-utilisation multicommodity flow LP (or scores given splits on a
traffic matrix); the offline evaluator (``labs.te_eval``) compares shortest path,
ECMP, reactive, predictive and oracle TE over a dataset's evaluation span.
``engineer`` runs it in the controller (``app``: ``apps.te.app:provider``) and
``dataplane`` turns its plans into flows and groups. Importing the package registers
the app: owner ``te``, its bands in the shared ``ingress`` and ``forward`` tables, its
config section ``te``.
"""

from apps.te.config import TeConfig
from controller.appbase import AppSpec, register

SPEC = register(AppSpec(
    name="te", code=0x06, ids=True,
    # ingress: labelled frames skip classify (PRIO_LABEL_INGRESS); forward: splits above
    # the pair flows up to the labelled routes (apps.te.dataplane's PRIO_*).
    bands=(("ingress", 1490, 1490), ("forward", 1010, 1200)),
    section="te", schema=TeConfig,
    summary="traffic engineering: min-MLU splits over k paths on the forecast traffic matrix"))


class TEError(ValueError):
    """Bad input to traffic engineering (graph, path, demand); the message names what is wrong."""
