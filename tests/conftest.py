"""The whole suite runs with every app of the repository registered, as a controller
that loads them all does (an app registers its owner code, tables, bands and config
section when its package is imported: controller.appbase). Tests of the registry
itself register and unregister apps of their own."""

import apps.links  # noqa: F401
import apps.peering  # noqa: F401
import apps.qos  # noqa: F401
import apps.slices  # noqa: F401
import apps.stitching  # noqa: F401
import apps.te  # noqa: F401
