"""The local sandbox: real HAProxy, Prometheus and a demo service on 127.0.0.1 (gantry sandbox, HaproxyTarget)."""
