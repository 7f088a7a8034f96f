"""AWS Organizations tag policies: their documents as AWS reads them (documents) and
the ones an organization imported, with the rules generated from them (imported).
"""
