"""Bazaar's tooling around the runtime packages: the `bazaar` command, the local stack, the simulator and the main job."""
