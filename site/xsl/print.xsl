<?xml version="1.0"?>
<!-- The print style (?style=print): plain, no links. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:import href="common.xsl"/>
  <xsl:output method="html" encoding="UTF-8" doctype-system="about:legacy-compat"/>
  <xsl:template match="/page">
    <html lang="en">
      <head><title><xsl:value-of select="title"/> (print)</title></head>
      <body>
        <h1><xsl:value-of select="title"/></h1>
        <xsl:for-each select="item">
          <h2><xsl:value-of select="@date"/>: <xsl:value-of select="heading"/></h2>
          <xsl:apply-templates select="para"/>
        </xsl:for-each>
      </body>
    </html>
  </xsl:template>
</xsl:stylesheet>
