"""Many hosts over SSH (issue 15): the controller (``fleet``), what runs on each host
(``hostside``), the shipped program (``pyz``) and ``fab -H`` (``fab``).

Fabric (and paramiko under it) is imported only by ``fleet`` and ``fab``, and only when a
task is given hosts: a local command never pays for it, and a host never needs it.
"""
