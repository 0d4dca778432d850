"""Spare links: links between switches held out of service until asked for.

Our routing uses one link per switch pair, so a spare is a link between two switches
(typically not otherwise adjacent) whose two ports the controller keeps
administratively down (``Desired.ports_down``, brought there by the core with port
mods: ``controller.ports``). Each spare's ``in_service`` is a knob
(``controller.appbase.Knob``, kind ``link``): the provisioning app's ``spare_link``
template sets it, the ports come up and LLDP finds the link, which then carries
paths like any other; its capacity is the ordinary topology metadata's
(``topology.links``).

``config`` declares the spares, ``store`` keeps which are in service across restarts,
``app`` is the app the controller loads (``apps.links.app:provider``). Importing the
package registers the app: owner ``links`` (it puts no flows, groups or meters on
switches) and its config section ``links``.
"""

from apps.links.config import LinksConfig
from controller.appbase import AppSpec, register

SPEC = register(AppSpec(
    name="links", code=0x0B,
    section="links", schema=LinksConfig,
    summary="links: spare links held administratively down until brought into service by a knob"))
