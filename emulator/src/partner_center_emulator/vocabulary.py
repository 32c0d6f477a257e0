"""Word lists the referral generator draws from (names with quotes and non-ASCII on purpose)."""

from __future__ import annotations

FIRST = ["Ada", "Brian", "Chloë", "Dmitri", "Eóin", "Fatima", "Grace", "Hiro", "Ingrid", "José",
          "Kwame", "Lena", "Mateo", "Nadia", "Olu", "Priya", "Quinn", "Renée", "Søren", "Tamsin",
          "Umar", "Viktor", "Wen", "Xiadani", "Yusuf", "Zoë"]  # fmt: skip
LAST = ["O'Brien", "Müller", "Nakamura", "D'Angelo", "Okafor", "Łukasik", "García", "Smith",
         "Van der Berg", "Ó Súilleabháin", "Kowalski", "Nguyen", "Haddad", "Johansson", "Dubois",
         "O'Neil", "Schäfer", "Patel", "Rossi", "Andersen"]  # fmt: skip
COMPANY_ROOTS = ["Fabrikam", "Northwind", "Adatum", "Tailspin", "Wingtip", "Litware", "Proseware",
                  "Woodgrove", "Lamna", "Relecloud", "Trey", "Alpine Ski", "Fourth Coffee",
                  "Humongous", "Lucerne", "Margie's Travel", "O'Brien & Søn", "Zürich Käse",
                  "Café Zoë", "Coho Winery", "株式会社サンプル", "Żabka Systemy"]  # fmt: skip
COMPANY_SUFFIX = ["Inc", "Ltd", "GmbH", "ApS", "S.A.", "LLC", "Group", "Corp", "AG", "K.K."]
PLACES = [
    ("US", "WA", "Redmond", "98052", "North America"), ("US", "NY", "New York", "10001", "North America"),
    ("US", "TX", "Austin", "73301", "North America"), ("CA", "ON", "Toronto", "M5H 2N2", "North America"),
    ("GB", "", "London", "EC1A 1BB", "Europe"), ("IE", "", "Dublin", "D02 X285", "Europe"),
    ("DE", "BY", "München", "80331", "Europe"), ("DK", "", "København", "1050", "Europe"),
    ("FR", "", "Paris", "75001", "Europe"), ("PL", "", "Kraków", "30-001", "Europe"),
    ("JP", "", "東京", "100-0001", "Asia"), ("IN", "KA", "Bengaluru", "560001", "Asia"),
    ("BR", "SP", "São Paulo", "01000-000", "Latin America"), ("AU", "NSW", "Sydney", "2000", "Oceania"),
]  # fmt: skip
INDUSTRIES = ["Education", "Healthcare", "Manufacturing", "Retail", "FinancialServices", "Government"]
PRODUCTS = ["Microsoft365", "Azure", "Dynamics365", "PowerPlatform", "Teams", "Security"]
SERVICES = ["LearningAndCertification", "Consulting", "Deployment", "ManagedServices", "Migration"]
SOLUTIONS = [("SOL-Microsoft365", "Microsoft365"), ("SOL-AzureMigrate", "Azure Migrate"),
              ("SOL-D365Sales", "Dynamics 365 Sales"), ("SOL-Sentinel", "Microsoft Sentinel")]  # fmt: skip
CURRENCIES = ["USD", "EUR", "GBP", "DKK", "JPY", "INR", "BRL", "AUD", "CAD", "PLN"]
LOCALES = ["en-US", "en-GB", "de-DE", "da-DK", "fr-FR", "ja-JP", "pl-PL", "pt-BR"]
TITLES = ["Account Executive", "Solution Architect", "Partner Seller", "CTO", "IT Director", "Buyer"]
NOTES = [
    "We are interested in deploying Microsoft 365 and are looking for support in training our employees.",
    "Customer asked for a migration assessment of 300 VMs before the end of the quarter.",
    'Needs "zero trust" guidance; CISO is the sponsor.',
    "Renewal at risk: the customer's CIO wants a demo of Copilot — in Danish, if possible.",
    "",
]
STREETS = ("Main", "Market", "Harbour", "Königs")
SOURCES = ("Partner", "Microsoft", "Customer", "Marketplace")
CALLS = ("Contact", "Demo", "Trial", "Quote", "Consultation")
