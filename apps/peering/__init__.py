"""Peering over real BGP (issue 14): ``gobgp`` is the typed client of the GoBGP daemon
that speaks BGP to the providers."""
