"""The cloud: the ENS actuator, the MNS publisher, CloudMonitor readings, credentials, endpoints and
the one classification of SDK failures. Imports only the core."""
