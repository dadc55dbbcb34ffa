"""Benchmarks of the ens-autoscaler function (not tests): `bench/run.sh` or `python -m bench`.

Kept empty on purpose: the child processes of the cold-start benchmark import
nothing from here before their timed work (see child.py).
"""
