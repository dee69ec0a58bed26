<?xml version="1.0"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/page"><page><title>[<xsl:value-of select="title"/>]</title><xsl:copy-of select="para"/></page></xsl:template>
</xsl:stylesheet>
