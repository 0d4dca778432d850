"""Virtual-network stitching across sites (issue 6). See ``apps.stitching.policy``
for the security policy; the rest of the app is being built."""
