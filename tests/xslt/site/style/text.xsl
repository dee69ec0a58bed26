<?xml version="1.0"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="text" encoding="ISO-8859-1" media-type="text/plain"/>
  <xsl:template match="/page">TEXT: <xsl:value-of select="title"/>
</xsl:template>
</xsl:stylesheet>
