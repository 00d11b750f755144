"""Small tables of public cloud facts the mocks answer lookups from (availability zones, default networks).

Availability-zone counts are those an account sees in each region, from AWS's "Regions and Zones" and
Google Cloud's "Regions and zones" documentation pages (checked 2026). An unknown region gets three
zones and a diagnostic, never a silent guess.
"""

from __future__ import annotations

# region -> (zone letters an account sees, zone-id prefix)
AWS_ZONES: dict[str, tuple[str, str]] = {
    "us-east-1": ("abcdef", "use1"),
    "us-east-2": ("abc", "use2"),
    "us-west-1": ("ac", "usw1"),
    "us-west-2": ("abcd", "usw2"),
    "ca-central-1": ("abd", "cac1"),
    "sa-east-1": ("abc", "sae1"),
    "eu-west-1": ("abc", "euw1"),
    "eu-west-2": ("abc", "euw2"),
    "eu-west-3": ("abc", "euw3"),
    "eu-central-1": ("abc", "euc1"),
    "eu-north-1": ("abc", "eun1"),
    "eu-south-1": ("abc", "eus1"),
    "ap-south-1": ("abc", "aps1"),
    "ap-southeast-1": ("abc", "apse1"),
    "ap-southeast-2": ("abc", "apse2"),
    "ap-northeast-1": ("acd", "apne1"),
    "ap-northeast-2": ("abcd", "apne2"),
    "ap-northeast-3": ("abc", "apne3"),
}
DEFAULT_AWS_ZONES = "abc"

GCP_ZONES: dict[str, str] = {
    "us-central1": "abcf",
    "us-east1": "bcd",
    "us-east4": "abc",
    "us-west1": "abc",
    "us-west2": "abc",
    "europe-west1": "bcd",
    "europe-west2": "abc",
    "europe-west3": "abc",
    "europe-west4": "abc",
    "europe-north1": "abc",
    "asia-east1": "abc",
    "asia-northeast1": "abc",
    "asia-southeast1": "abc",
}
DEFAULT_GCP_ZONES = "abc"

# Public facts about AWS's default VPC: 172.31.0.0/16 with one /20 default subnet per zone.
AWS_DEFAULT_VPC_CIDR = "172.31.0.0/16"
# Amazon's own AMI owner account (Amazon Linux), used when a lookup names the alias "amazon".
AWS_AMAZON_OWNER = "137112412989"
