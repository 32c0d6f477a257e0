"""The README's main command (placeholder until the emulator and the warehouse-load DAG land)."""

from __future__ import annotations

from airflow_provider_partner.get_provider_info import get_provider_info


def main() -> None:
    info = get_provider_info()
    print(f"{info['package-name']} {info['versions'][0]}: {info['description']}")


if __name__ == "__main__":
    main()
