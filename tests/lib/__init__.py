"""What the tests share, none of it a test: in-memory OpenFlow switches and networks
(``fakeswitch``, ``fakeoftable``), gRPC stream helpers (``streams``), synthetic
panels and traffic matrices (``synthetic``, ``synthetic_tm``), a real OVS bridge under
a controller process (``ovs_lab``) with a fixed provider for it (``vip_provider``),
and what e2e tests read off a running network (``readings``)."""
