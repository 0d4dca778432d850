"""Predictive provisioning with staging (issue 15): what a planned change would do to the
data plane, checked before it is installed.

So far only the verifier is here (``apps.provisioning.verify``): an in-memory model of
every switch's flows, groups and meters that checks loops, black holes, reachability,
isolation and dangling group and meter references, incrementally per rule update. The
package registers no app yet: no owner code, tables or entry point.
"""
