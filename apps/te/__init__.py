"""Traffic engineering: candidate paths, link-disjoint backups and the min-MLU split LP.

``paths`` builds the directed substrate graph from a topology spec and computes
candidate paths (k shortest by IGP cost), ECMP splits, and link-disjoint backup
paths; ``lp`` compiles candidate paths against the directed links and solves the
min-max-link-utilisation multicommodity flow LP (or scores given splits on a
traffic matrix); ``evaluate`` is the offline evaluator over a dataset's evaluation
span, comparing shortest path, ECMP, reactive, predictive and oracle TE.
Nothing here talks to switches or reads the clock.
"""


class TEError(ValueError):
    """Bad input to traffic engineering (graph, path, demand); the message names what is wrong."""
