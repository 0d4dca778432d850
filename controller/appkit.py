"""Pieces every app needs the same way, kept in one place.

- ``Basis``: whether an app decides on forecasts (predictive) or on measurements
  (reactive) right now, and why; each change is logged once, and the app reports it
  through ``App.basis`` (GetStatus ``mode``, ``foresight_app_predictive{app}``).
- ``predictor_client``: the prediction service's client from ``controller.predictor``,
  or None in reactive mode.
"""

from __future__ import annotations

import logging

from controller.config import PredictorLinkConfig

NO_PREDICTOR = "no predictor configured (controller.predictor.address)"


class Basis:
    """What an app's decisions rest on: "predictive" (forecasts) or "reactive"
    (measurements), with the reason for the last fall-back. ``label`` names the
    decisions in logs ("traffic engineering"), ``ahead`` says what predictive means for
    this app ("forecasts 300 s ahead at q0.9")."""

    def __init__(self, log: logging.Logger, label: str, ahead: str):
        self._log = log
        self.label = label
        self.ahead = ahead
        self.mode = "reactive"
        self.why = "no decision yet"
        self._logged: tuple[str, str] | None = None

    @property
    def predictive(self) -> bool:
        return self.mode == "predictive"

    def on_forecasts(self) -> None:
        self._set("predictive", "")

    def on_measurements(self, why: str) -> None:
        self._set("reactive", why)

    def _set(self, mode: str, why: str) -> None:
        self.mode, self.why = mode, why
        if self._logged != (mode, why):
            self._logged = (mode, why)
            if mode == "reactive":
                self._log.warning("%s on measurements (reactive): %s", self.label, why)
            else:
                self._log.info("%s on forecasts (predictive): %s", self.label, self.ahead)


def predictor_client(link: PredictorLinkConfig):
    """A client of the prediction service at ``link.address``, or None if none is set."""
    if not link.address:
        return None
    from predictors.client import PredictorClient       # gRPC stubs: only when there is one
    return PredictorClient(link.address, timeout_s=link.timeout_s)
