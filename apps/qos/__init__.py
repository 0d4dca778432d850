"""QoS classes: traffic marked with given DSCP values ranked ahead of other traffic.

The userspace datapath of Open vSwitch has no egress queues, so "ahead of" is built
from what OpenFlow 1.3 does have: at the first switch a packet meets, its DSCP picks
a class (``dataplane``), and a less important class is held to its meter's rate so
that the classes above it keep their share of the links. Meter counters become
per-class offered and dropped rates (``rates``); ``app`` is the app the controller
loads (``apps.qos.app:provider``). Importing the package registers the app: owner
``qos``, its band in the shared ``classify`` table, its config section ``qos``.
"""

from apps.qos.config import QosConfig
from controller.appbase import AppSpec, register

# Priorities in classify: PRIO_TOP - rank, ranks 0..QOS_MAX_RANK, and the default class
# below them (apps.qos.dataplane); under the slices' band, so a slice's rules decide first.
BAND = (800, 900)

SPEC = register(AppSpec(
    name="qos", code=0x07, ids=True,
    bands=(("classify", *BAND),),
    section="qos", schema=QosConfig,
    summary="QoS classes by DSCP at the ingress, less important classes held to their meter rates"))
