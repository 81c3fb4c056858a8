"""Flower client mods: code that wraps every message a ClientApp handles (outermost first).

* :mod:`strategies.mods.audit`: logs exactly what leaves a device, for the privacy audit;
* :mod:`strategies.mods.faults`: fault injection for the deployment tests;
* :mod:`strategies.mods.secagg_weight`: hides the SecAgg+ weight that Flower sends in the clear;
* :mod:`strategies.mods.distributed_dp`: adds a device's share of the distributed DP noise.
"""
