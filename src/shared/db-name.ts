/** What CouchDB accepts as a database name (the reserved `_` names aside): written once for config, store and rules. */
export const kDatabaseNamePattern = /^[a-z][a-z0-9_$()+/-]*$/;
