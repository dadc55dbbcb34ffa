"""The scaling policy: YAML in, a validated immutable `Policy` out.

    model        the `Policy` and its parts, as the planner reads them (pure)
    validation   a decoded document → a `Policy`, or every problem with its key path
    loading      a file → a `Policy`: YAML, keys written twice, the form compiled at deploy
                 time (`python -m ens_autoscaler.core.policy.loading policy.yaml`), the cache
"""
