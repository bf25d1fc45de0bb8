"""Salesforce: Leads, Contacts, Opportunities, stage history, contact roles, campaign responses
in; closedloop's custom fields out.  simple-salesforce, requests and PyJWT are imported only here."""
