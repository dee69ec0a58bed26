<?xml version="1.0"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:import href="common.xsl"/>
  <xsl:output method="html" encoding="UTF-8"/>
  <xsl:param name="who" select="'nobody'"/>
  <xsl:template match="/page">
    <html><head><title><xsl:value-of select="title"/></title></head>
    <body><h1><xsl:value-of select="title"/></h1><xsl:apply-templates select="para"/>
    <p class="who"><xsl:value-of select="$who"/></p>
    <xsl:call-template name="footer"/></body></html>
  </xsl:template>
</xsl:stylesheet>
