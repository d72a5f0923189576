"""What the gateway tells operators about itself: logs, Prometheus metrics and OpenTelemetry traces."""
