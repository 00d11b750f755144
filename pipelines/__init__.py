"""CI/CD pipeline steps shared by .github/workflows/delivery.yml, .gitlab-ci.yml and tests/pipelines."""
