<?xml version="1.0"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="html" encoding="UTF-8"/>
  <xsl:template match="/error"><p class="error">Sorry: <xsl:value-of select="uri"/> failed at line <xsl:value-of select="line"/></p></xsl:template>
</xsl:stylesheet>
