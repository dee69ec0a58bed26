<?xml version="1.0"?>
<!-- xsl:output spread over imports and an include (XSLT 1.0 §16): the
     effective values are method html (high.xsl), media-type
     application/xhtml+xml (deep.xsl, imported by high.xsl, beats low.xsl),
     encoding ISO-8859-1 (inc.xsl: an include counts as this stylesheet). -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:import href="low.xsl"/>
  <xsl:import href="high.xsl"/>
  <xsl:include href="inc.xsl"/>
  <xsl:output indent="no"/>
  <xsl:template match="/page">
    <html><head><title><xsl:value-of select="title"/></title></head>
    <body><p><xsl:value-of select="para"/></p></body></html>
  </xsl:template>
</xsl:stylesheet>
