"""Operations inside ownbase: backup and restore, signing-key rotation, Prometheus metrics."""
