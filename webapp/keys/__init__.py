"""Private keys held by CertDesk, sealed at rest; shared by SSL > CSRs and SSL > Certificates."""
