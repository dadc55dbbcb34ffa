"""ens-autoscaler: a scale-out policy engine for ENS edge devices on Function Compute."""
