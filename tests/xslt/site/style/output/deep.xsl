<?xml version="1.0"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output media-type="application/xhtml+xml" encoding="UTF-16"/>
</xsl:stylesheet>
