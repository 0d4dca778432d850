"""QoS classes: traffic marked with given DSCP values ranked ahead of other traffic.

The userspace datapath of Open vSwitch has no egress queues, so "ahead of" is built
from what OpenFlow 1.3 does have: at the first switch a packet meets, its DSCP picks
a class (``dataplane``), and a less important class is held to its meter's rate so
that the classes above it keep their share of the links. Meter counters become
per-class offered and dropped rates (``rates``); ``app`` is the provider the
controller loads (``apps.qos.app:provider``).
"""
