"""fourteen: routing for the Dutch 14+netnummer (14 + area code → the municipality's contact centre)."""

__version__ = "0.1.0"
