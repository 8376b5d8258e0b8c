"""The balance report: what each genre cluster holds, for data leads choosing weights."""
