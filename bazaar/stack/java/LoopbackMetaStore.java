package bazaar;

import java.io.InputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import javax.jdo.PersistenceManager;
import javax.jdo.Query;

import org.apache.hadoop.hive.conf.HiveConf;
import org.apache.hadoop.hive.metastore.HiveMetaStore;
import org.apache.hadoop.hive.metastore.IHMSHandler;
import org.apache.hadoop.hive.metastore.ObjectStore;
import org.apache.hadoop.hive.metastore.TSetIpAddressProcessor;
import org.apache.thrift.protocol.TBinaryProtocol;
import org.apache.thrift.server.TThreadPoolServer;
import org.apache.thrift.transport.TServerSocket;
import org.apache.thrift.transport.TTransportFactory;

/**
 * The Hive 2.3 metastore (the classes inside pyspark's jars) served on one
 * address only. HiveMetaStore's own main binds every interface; this binds the
 * configured host (127.0.0.1 by default), with the same handler and protocol
 * (TBinaryProtocol over a buffered transport, no SASL).
 *
 * Usage: java -cp CONF_DIR:THIS_DIR:PYSPARK/jars/* bazaar.LoopbackMetaStore HOST PORT
 * where CONF_DIR holds hive-site.xml.
 */
public final class LoopbackMetaStore {
    private LoopbackMetaStore() {}

    public static void main(String[] args) throws Exception {
        String host = args[0];
        int port = Integer.parseInt(args[1]);
        HiveConf conf = new HiveConf(LoopbackMetaStore.class);
        if (Boolean.getBoolean("bazaar.makeSchema")) {
            makeSchema(conf);
        }
        HiveMetaStore.HMSHandler base = new HiveMetaStore.HMSHandler("bazaar metastore", conf, false);
        IHMSHandler handler = HiveMetaStore.newRetryingHMSHandler(base, conf);
        TServerSocket socket = new TServerSocket(new InetSocketAddress(host, port));
        TThreadPoolServer.Args serverArgs = new TThreadPoolServer.Args(socket)
            .processor(new TSetIpAddressProcessor<>(handler))
            .transportFactory(new TTransportFactory())
            .protocolFactory(new TBinaryProtocol.Factory())
            .minWorkerThreads(4)
            .maxWorkerThreads(100);
        System.out.println("metastore serving on " + host + ":" + port);
        new TThreadPoolServer(serverArgs).serve();
    }

    /**
     * Every table of the metastore's schema, made before the first request: DataNucleus makes a
     * table on its class's first use, adding its foreign keys on a connection of its own. Made
     * inside a request that has written to the table a key refers to (create_table writes TBLS,
     * then needs TBL_PRIVS), the key waits forever for that request's lock on a database that
     * locks for DDL (Postgres). Here, one read of each class in package.jdo, with no write open,
     * makes them all with their keys and indexes.
     */
    private static void makeSchema(HiveConf conf) throws Exception {
        ObjectStore store = new ObjectStore();
        store.setConf(conf);
        PersistenceManager pm = store.getPersistenceManager();
        String jdo;
        try (InputStream in = ObjectStore.class.getClassLoader().getResourceAsStream("package.jdo")) {
            jdo = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        Matcher classes = Pattern.compile("<class name=\"(\\w+)\"").matcher(jdo);
        int made = 0;
        while (classes.find()) {
            Class<?> cls = Class.forName("org.apache.hadoop.hive.metastore.model." + classes.group(1));
            Query query = pm.newQuery(cls);
            query.setRange(0, 1);
            query.execute();
            query.closeAll();
            made++;
        }
        store.shutdown();
        System.out.println("metastore schema ready: " + made + " classes");
    }
}
