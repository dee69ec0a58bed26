<?xml version="1.0"?>
<!-- The demo site's page style: <page> with <item>s as an HTML page. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:import href="common.xsl"/>
  <xsl:output method="html" encoding="UTF-8" doctype-system="about:legacy-compat"/>
  <xsl:template match="/page">
    <html lang="en">
      <head>
        <title><xsl:value-of select="title"/></title>
        <link rel="stylesheet" href="/style.css"/>
      </head>
      <body>
        <h1><xsl:value-of select="title"/></h1>
        <xsl:apply-templates select="item"/>
        <p><a href="?style=print">Print style</a> · <a href="/">Home</a></p>
      </body>
    </html>
  </xsl:template>
  <xsl:template match="item">
    <h2><xsl:value-of select="heading"/><xsl:text> </xsl:text><small>(<xsl:value-of select="@date"/>)</small></h2>
    <xsl:apply-templates select="para"/>
  </xsl:template>
</xsl:stylesheet>
