"""The official catalogues the built-in frameworks cite (policies/data/frameworks), copied from
the sources named here so tests/policies/test_framework_catalogues.py can pin every control id
and title. Checked on 2026-12-07 through stored public copies (no live fetch was possible).

Where a catalogue below holds an id with no text (None), the id's existence was checked but its
text was not copied: a framework may not cite it until its text is added here with its source.
"""

# ISO/IEC 27001:2022 Annex A, Table A.1: the 93 controls and their titles.
# Source: intuitem/ciso-assistant-community, backend/library/libraries/iso27001-2022.yaml
# (library "International standard ISO/IEC 27001:2022", provider ISO/IEC, commit
# 09c9b01f70f6bf3dfbf6d8bd76a3d56cc49f1e0f), requirement nodes A.5.1 to A.8.34. Copied as there,
# leading and trailing spaces removed; 7.6 is written "Working In secure areas" there, here with
# a lower-case "in" as in the standard's other titles. The standard itself (iso.org, a paid
# document) could not be read.
ISO_27001_2022 = {
    "5.1": "Policies for information security",
    "5.2": "Information security roles and responsibilities",
    "5.3": "Segregation of duties",
    "5.4": "Management responsibilities",
    "5.5": "Contact with authorities",
    "5.6": "Contact with special interest groups",
    "5.7": "Threat intelligence",
    "5.8": "Information security in project management",
    "5.9": "Inventory of information and other associated assets",
    "5.10": "Acceptable use of information and other associated assets",
    "5.11": "Return of assets",
    "5.12": "Classification of information",
    "5.13": "Labelling of information",
    "5.14": "Information transfer",
    "5.15": "Access control",
    "5.16": "Identity management",
    "5.17": "Authentication information",
    "5.18": "Access rights",
    "5.19": "Information security in supplier relationships",
    "5.20": "Addressing information security within supplier agreements",
    "5.21": "Managing information security in the ICT supply chain",
    "5.22": "Monitor, review and change management of supplier services",
    "5.23": "Information security for use of cloud services",
    "5.24": "Information security incident management planning and preparation",
    "5.25": "Assessment and decision on information security events",
    "5.26": "Response to information security incidents",
    "5.27": "Learning from information security incidents",
    "5.28": "Collection of evidence",
    "5.29": "Information security during disruption",
    "5.30": "ICT readiness for business continuity",
    "5.31": "Legal, statutory, regulatory and contractual requirements",
    "5.32": "Intellectual property rights",
    "5.33": "Protection of records",
    "5.34": "Privacy and protection of PII",
    "5.35": "Independent review of information security",
    "5.36": "Compliance with policies, rules and standards for information security",
    "5.37": "Documented operating procedures",
    "6.1": "Screening",
    "6.2": "Terms and conditions of employment",
    "6.3": "Information security awareness, education and training",
    "6.4": "Disciplinary process",
    "6.5": "Responsibilities after termination or change of employment",
    "6.6": "Confidentiality or non-disclosure agreements",
    "6.7": "Remote working",
    "6.8": "Information security event reporting",
    "7.1": "Physical security perimeters",
    "7.2": "Physical entry",
    "7.3": "Securing offices, rooms and facilities",
    "7.4": "Physical security monitoring",
    "7.5": "Protecting against physical and environmental threats",
    "7.6": "Working in secure areas",
    "7.7": "Clear desk and clear screen",
    "7.8": "Equipment siting and protection",
    "7.9": "Security of assets off-premises",
    "7.10": "Storage media",
    "7.11": "Supporting utilities",
    "7.12": "Cabling security",
    "7.13": "Equipment maintenance",
    "7.14": "Secure disposal or re-use of equipment",
    "8.1": "User end point devices",
    "8.2": "Privileged access rights",
    "8.3": "Information access restriction",
    "8.4": "Access to source code",
    "8.5": "Secure authentication",
    "8.6": "Capacity management",
    "8.7": "Protection against malware",
    "8.8": "Management of technical vulnerabilities",
    "8.9": "Configuration management",
    "8.10": "Information deletion",
    "8.11": "Data masking",
    "8.12": "Data leakage prevention",
    "8.13": "Information backup",
    "8.14": "Redundancy of information processing facilities",
    "8.15": "Logging",
    "8.16": "Monitoring activities",
    "8.17": "Clock synchronization",
    "8.18": "Use of privileged utility programs",
    "8.19": "Installation of software on operational systems",
    "8.20": "Networks security",
    "8.21": "Security of network services",
    "8.22": "Segregation of networks",
    "8.23": "Web filtering",
    "8.24": "Use of cryptography",
    "8.25": "Secure development life cycle",
    "8.26": "Application security requirements",
    "8.27": "Secure system architecture and engineering principles",
    "8.28": "Secure coding",
    "8.29": "Security testing in development and acceptance",
    "8.30": "Outsourced development",
    "8.31": "Separation of development, test and production environments",
    "8.32": "Change management",
    "8.33": "Test information",
    "8.34": "Protection of information systems during audit testing",
}

# AICPA, 2017 Trust Services Criteria (TSP section 100): every criterion id; the criterion text
# for those the built-in framework cites.
# Source: intuitem/ciso-assistant-community, backend/library/libraries/soc2-2017.yaml (library
# "SOC2-2017 Trust Services Criteria", provider AICPA, "(c) 2023 AICPA", commit
# 6420df0963a784e0c354c8621fb39b013017bb46): its depth-2 requirement nodes give the ids and
# texts; the typographic apostrophe there is written ' here. The AICPA's own document (the URL
# in policies/data/frameworks/soc2.yaml) is a download behind a form and could not be read.
_SOC2_IDS = (
    [f"CC1.{n}" for n in range(1, 6)]
    + [f"CC2.{n}" for n in range(1, 4)]
    + [f"CC3.{n}" for n in range(1, 5)]
    + [f"CC4.{n}" for n in range(1, 3)]
    + [f"CC5.{n}" for n in range(1, 4)]
    + [f"CC6.{n}" for n in range(1, 9)]
    + [f"CC7.{n}" for n in range(1, 6)]
    + ["CC8.1", "CC9.1", "CC9.2", "A1.1", "A1.2", "A1.3", "C1.1", "C1.2"]
    + [f"PI1.{n}" for n in range(1, 6)]
    + ["P1.1", "P2.1", "P3.1", "P3.2", "P4.1", "P4.2", "P4.3", "P5.1", "P5.2"]
    + [f"P6.{n}" for n in range(1, 8)]
    + ["P7.1", "P8.1"]
)
SOC2_2017 = dict.fromkeys(_SOC2_IDS) | {
    "CC6.1": "The entity implements logical access security software, infrastructure, and "
    "architectures over protected information assets to protect them from security events to "
    "meet the entity's objectives.",
    "CC8.1": "The entity authorizes, designs, develops or acquires, configures, documents, "
    "tests, approves, and implements changes to infrastructure, data, software, and procedures "
    "to meet its objectives.",
    "C1.1": "The entity identifies and maintains confidential information to meet the entity's "
    "objectives related to confidentiality.",
    "A1.2": "The entity authorizes, designs, develops or acquires, implements, operates, "
    "approves, maintains, and monitors environmental protections, software, data back-up "
    "processes, and recovery infrastructure to meet its objectives.",
}
# The points of focus the soc2.yaml rationales quote, from the same file (CC6.1.1, CC6.1.6,
# C1.1.1, A1.2.7); "Identifies Confidential information" is capitalised there as here below.
SOC2_POINTS_OF_FOCUS = {
    "CC6.1": ["Identifies and Manages the Inventory of Information Assets",
              "Restricts Access to Information Assets"],
    "C1.1": ["Identifies Confidential Information"],
    "A1.2": ["Determines Data Requiring Backup"],
}  # fmt: skip

# 45 CFR Part 164 Subpart C (the HIPAA Security Rule): paragraph ids and their headings as the
# regulation words them. Only the paragraphs whose text was read in a stored copy are listed:
# - 164.308(a)(1) and (a)(2), (a)(3)(i), (a)(3)(ii)(A): law.cornell.edu/cfr/text/45/164.308
#   (LII's copy of the eCFR) and edocket.access.gpo.gov/cfr_2007/octqtr/45cfr164.308.htm;
# - 164.308(a)(7): lionfishcybersecurity.com's 164.308(a)(7) page (the standard and its five
#   implementation specifications, quoted) and docs.tibco.com's HIPAA 164.308(a)(7) page;
# - 164.310: edocket.access.gpo.gov/cfr_2004/octqtr/45cfr164.310.htm, codes.findlaw.com's
#   45 CFR 164.310 ("current as of January 02, 2025") and clearwatercompliance.com's
#   164.310(d)(1) page ((d)(2)(i) to (iv) headings).
# 164.312, 164.314 and 164.316 are not copied: no framework control cites them. The eCFR itself
# (ecfr.gov) is not among the stored copies.
HIPAA_SECURITY_RULE = {
    "§164.308(a)(1)(i)": "Standard: Security management process",
    "§164.308(a)(1)(ii)(A)": "Risk analysis (Required)",
    "§164.308(a)(1)(ii)(B)": "Risk management (Required)",
    "§164.308(a)(1)(ii)(C)": "Sanction policy (Required)",
    "§164.308(a)(1)(ii)(D)": "Information system activity review (Required)",
    "§164.308(a)(2)": "Standard: Assigned security responsibility",
    "§164.308(a)(3)(i)": "Standard: Workforce security",
    "§164.308(a)(3)(ii)(A)": "Authorization and/or supervision (Addressable)",
    "§164.308(a)(7)(i)": "Standard: Contingency plan",
    "§164.308(a)(7)(ii)(A)": "Data backup plan (Required)",
    "§164.308(a)(7)(ii)(B)": "Disaster recovery plan (Required)",
    "§164.308(a)(7)(ii)(C)": "Emergency mode operation plan (Required)",
    "§164.308(a)(7)(ii)(D)": "Testing and revision procedures (Addressable)",
    "§164.308(a)(7)(ii)(E)": "Applications and data criticality analysis (Addressable)",
    "§164.310(a)(1)": "Standard: Facility access controls",
    "§164.310(a)(2)(i)": "Contingency operations (Addressable)",
    "§164.310(a)(2)(ii)": "Facility security plan (Addressable)",
    "§164.310(a)(2)(iii)": "Access control and validation procedures (Addressable)",
    "§164.310(a)(2)(iv)": "Maintenance records (Addressable)",
    "§164.310(b)": "Standard: Workstation use",
    "§164.310(c)": "Standard: Workstation security",
    "§164.310(d)(1)": "Standard: Device and media controls",
    "§164.310(d)(2)(i)": "Disposal (Required)",
    "§164.310(d)(2)(ii)": "Media re-use (Required)",
    "§164.310(d)(2)(iii)": "Accountability (Addressable)",
    "§164.310(d)(2)(iv)": "Data backup and storage (Addressable)",
}

CATALOGUES = {
    "iso-27001-2022": ISO_27001_2022,
    "soc2": SOC2_2017,
    "hipaa": HIPAA_SECURITY_RULE,
}
